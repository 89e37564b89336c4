// Reads into a buffer of our own, read into again as soon as its bytes have left the
// process. Node's usual read path allocates a fresh 64 KiB buffer for every read, and
// collecting them is about a third of a busy tunnel process's CPU (bench/README.md).
// `onread` lets a socket we dial read into memory we choose; Node offers it for no
// other socket (not for accepted ones), so only the client's plain TCP sockets have it.
//
// Until joinSockets() takes over, such a socket behaves like any other: each read is
// pushed into its stream ('data', 'readable', read(), unshift() all work as usual), in a
// buffer handed over for good, as Node would. Only the pump reads in place.
import net, { type OnReadOpts, type Socket } from 'node:net';

/** What one read may fill: the size Node's own read path asks for. */
const READ_SIZE = 64 * 1024;
/** A read of this much or less says the socket is not busy (or no longer). */
const SMALL_READ = 4 * 1024;

/** Where every socket that is not busy reads: one for the process, so that an idle
 * socket holds no buffer of its own (as in Node's own read path). What is read into it is
 * copied out at once, since any socket's next read may overwrite it: small reads, from a
 * pool, cheaply. */
const SHARED = Buffer.allocUnsafeSlow(READ_SIZE);

/** Takes each chunk as it is read; returns false to stop reading until the socket's
 * resume(). The chunk's memory is read into again after the call, unless the reader
 * called retain() during it. */
export type ChunkReader = (chunk: Buffer) => boolean;

export class OwnReads {
  /** This socket's buffer while it is busy (its last read was not small). */
  private own: Buffer | undefined;
  private allocated = 0;
  /** The last chunk's bytes are still needed (by a write not complete yet, by the stream). */
  private retained = false;
  private reader: ChunkReader | undefined;
  /** Bytes the last read brought. */
  private lastRead = 0;
  private socket: Socket | undefined;

  /** The `onread` option to create the socket with; then attach() the socket. */
  readonly onread: OnReadOpts = {
    // Called before the first read and after each, for the next one.
    buffer: () => {
      if (this.lastRead <= SMALL_READ) {
        this.own = undefined;
        return SHARED;
      }
      if (!this.own || this.retained) {
        this.own = Buffer.allocUnsafeSlow(READ_SIZE);
        this.allocated++;
      }
      this.retained = false;
      return this.own;
    },
    callback: (length: number, buffer: Uint8Array) => {
      this.lastRead = length;
      const shared = buffer === SHARED;
      // Out of the shared buffer, a copy: it is the reader's or the stream's to keep.
      const chunk = shared ? Buffer.from(SHARED.subarray(0, length)) : (buffer as Buffer).subarray(0, length);
      if (this.reader) {
        const more = this.reader(chunk);
        if (shared) this.retained = false;
        return more;
      }
      // The stream keeps the chunk: the buffer is its now.
      if (!shared) this.retained = true;
      return this.socket?.push(chunk) ?? false;
    },
  };

  /** Records the socket this was created for: the stream its reads go to before the join. */
  attach(socket: Socket): void {
    this.socket = socket;
  }

  /** Buffers of its own it has read into so far: few while writes complete at once. */
  get buffers(): number {
    return this.allocated;
  }

  /** The chunk being read must outlive the reader's call: the next read goes elsewhere. */
  retain(): void {
    this.retained = true;
  }

  /** Hands every chunk read from now on to `reader` rather than to the stream. What the
   * stream holds already is the caller's to take first (read()). */
  setReader(reader: ChunkReader): void {
    this.reader = reader;
  }
}

/** A socket that reads into our own buffer, and carries what does it: a field, not a
 * WeakMap entry, which costs more to add and more at every garbage collection. */
class OwnReadsSocket extends net.Socket {
  constructor(
    readonly reads: OwnReads,
    // Node's constructor reads `onread` (net.connect() passes its options on to it), though
    // @types/node lists it among connect()'s options only.
    options: net.SocketConstructorOpts & { onread: OnReadOpts },
  ) {
    super(options);
  }
}

/** net.connect(), with reads into our own buffer (see above). */
export function connectWithOwnReads(options: net.TcpNetConnectOpts): Socket {
  const reads = new OwnReads();
  const socket = new OwnReadsSocket(reads, { allowHalfOpen: options.allowHalfOpen, onread: reads.onread });
  reads.attach(socket);
  return socket.connect(options); // what net.connect() does after the constructor
}

/** The OwnReads a socket was created with, if it was. */
export function ownReadsOf(socket: Socket): OwnReads | undefined {
  return socket instanceof OwnReadsSocket ? socket.reads : undefined;
}
