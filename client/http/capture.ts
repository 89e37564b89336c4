// What a request and its response said, kept for whoever looks (the inspector): headers
// as they came, and the first `limit` bytes of each body. Only built while someone
// captures (BurrowClient.captureRequests): otherwise a request costs nothing more.
import type http from 'node:http';
import { headerPairs } from '../../shared/http-headers.ts';
import type { CapturedExchange } from '../types.ts';

/** The first `limit` bytes of a body, and whether there were more. */
class BodyStart {
  private readonly chunks: Buffer[] = [];
  private kept = 0;
  truncated = false;

  constructor(private readonly limit: number) {}

  add(chunk: Buffer): void {
    const room = this.limit - this.kept;
    if (chunk.length > room) this.truncated = true;
    if (room <= 0) return;
    const part = chunk.length > room ? chunk.subarray(0, room) : chunk;
    this.chunks.push(Buffer.from(part)); // a copy: the socket's buffer is reused
    this.kept += part.length;
  }

  get bytes(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

export class Capture {
  private readonly startedAt = Date.now();
  private readonly request: BodyStart;
  private readonly response: BodyStart;
  private responseHeaders: [string, string][] = [];

  constructor(
    private readonly req: http.IncomingMessage,
    limit: number,
  ) {
    this.request = new BodyStart(limit);
    this.response = new BodyStart(limit);
  }

  requestData(chunk: Buffer): void {
    this.request.add(chunk);
  }

  /** The local service's answer has begun (its headers as they came). */
  answered(res: http.IncomingMessage): void {
    this.responseHeaders = headerPairs(res.rawHeaders);
  }

  responseData(chunk: Buffer): void {
    this.response.add(chunk);
  }

  result(): CapturedExchange {
    return {
      startedAt: this.startedAt,
      httpVersion: this.req.httpVersion,
      requestHeaders: headerPairs(this.req.rawHeaders),
      responseHeaders: this.responseHeaders,
      requestBody: this.request.bytes,
      responseBody: this.response.bytes,
      requestTruncated: this.request.truncated,
      responseTruncated: this.response.truncated,
    };
  }
}
