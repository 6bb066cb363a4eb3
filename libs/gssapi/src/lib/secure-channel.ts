import { GssUsageError, toGssError } from './errors';
import type { NativeSealer } from './native';

/** The largest framed packet (length word included) PostgreSQL's GSSAPI encryption allows. */
export const MAX_SEALED_PACKET_BYTES = 16384;

/**
 * Batches up to this many bytes are wrapped/unwrapped inline on the JS thread; larger ones on the
 * libuv pool. Measured with the raw binding on this project's 2-core machine under load
 * (aes256-cts-hmac-sha1-96, 2000 iterations each): 256 B cost 9 µs inline against 70 µs through
 * an AsyncWorker (the thread hand-off dominates); at 4 KB and above the two are within noise of
 * each other (16 KB: 150-180 µs either way) because the crypto dominates. So a typical query
 * message (well under 4 KB) is sealed inline, and anything bigger goes to the pool, where it
 * costs the event loop nothing: a 10 MB result never blocks it.
 */
export const INLINE_MAX_BYTES = 4096;

/** What {@link SecureChannel.unwrapToken} recovered. */
export interface UnwrappedToken {
  /** The verified plaintext. */
  data: Buffer;
  /** True when the peer encrypted the message, not only signed it. */
  confidential: boolean;
}

/**
 * Per-message protection over an established GSSAPI context (gss_wrap with confidentiality,
 * gss_unwrap that refuses anything not encrypted, tampered, replayed or out of order), framed as
 * PostgreSQL frames it: each packet is a 4-byte big-endian length followed by the wrap token, at
 * most {@link MAX_SEALED_PACKET_BYTES} bytes in all.
 *
 * Operations run in call order (a context's sequence numbers demand it) whatever their size.
 * Obtain one with {@link InitiatorContext.secureChannel}.
 */
export class SecureChannel {
  readonly #native: NativeSealer;
  /** The service the context was established with, e.g. `postgres@db.example.com`. */
  readonly target: string;
  #queue: Promise<unknown> = Promise.resolve();
  #disposed = false;

  private constructor(native: NativeSealer, target: string) {
    this.#native = native;
    this.target = target;
  }

  /** @internal */
  static fromNative(native: NativeSealer, target: string): SecureChannel {
    return new SecureChannel(native, target);
  }

  /**
   * The largest plaintext whose wrap token (confidentiality on) fits in `maxToken` bytes
   * (gss_wrap_size_limit). For PostgreSQL: `wrapSizeLimit(16384 - 4)`.
   */
  wrapSizeLimit(maxToken: number): number {
    this.#check();
    try {
      return this.#native.wrapSizeLimit(maxToken);
    } catch (e) {
      throw toGssError(e, { operation: 'wrap', target: this.target });
    }
  }

  /**
   * Encrypt `data` as packets of at most `maxPlain` plaintext bytes each (from
   * {@link SecureChannel.wrapSizeLimit}); resolves to the framed packets, ready to send.
   */
  seal(data: Buffer, maxPlain: number): Promise<Buffer> {
    return this.#run('wrap', data, () =>
      data.length <= INLINE_MAX_BYTES ? this.#native.sealSync(data, maxPlain) : this.#native.seal(data, maxPlain),
    );
  }

  /**
   * Decrypt and verify a run of complete framed packets; resolves to their plaintext. Rejects
   * (and the channel stays unusable) when any packet is tampered with, truncated, oversized,
   * replayed, out of order or not encrypted: nothing unverified is ever returned.
   */
  unseal(packets: Buffer): Promise<Buffer> {
    return this.#run('unwrap', packets, () =>
      packets.length <= INLINE_MAX_BYTES ? this.#native.unsealSync(packets) : this.#native.unseal(packets),
    );
  }

  /**
   * Wrap one message as a single unframed token (gss_wrap), for protocols that carry wrap tokens
   * themselves: SASL GSSAPI's security-layer negotiation (RFC 4752 section 3.1) after an LDAP bind.
   * Ordered with the other operations of this channel.
   * @param confidential - encrypt as well as sign (default false: integrity only, as RFC 4752 allows
   *   for the negotiation message).
   */
  wrapToken(data: Buffer, confidential = false): Promise<Buffer> {
    if (typeof confidential !== 'boolean') return Promise.reject(new GssUsageError('ERR_GSS_INVALID_ARG', 'confidential must be a boolean'));
    return this.#run('wrap', data, () => this.#native.wrapToken(data, confidential));
  }

  /**
   * Unwrap one unframed token (gss_unwrap). Integrity is always verified: a tampered, replayed or
   * reordered token rejects and spends the channel. `confidential` says whether the peer also
   * encrypted it; require it where your protocol does.
   */
  unwrapToken(token: Buffer): Promise<UnwrappedToken> {
    let result: UnwrappedToken | undefined;
    return this.#run('unwrap', token, () => {
      result = this.#native.unwrapToken(token);
      return result.data;
    }).then(() => result as UnwrappedToken);
  }

  /** True after {@link SecureChannel.dispose}. */
  get disposed(): boolean {
    return this.#disposed;
  }

  /** Delete the context. Idempotent; deferred while an operation runs. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#native.dispose();
  }

  #check(): void {
    if (this.#disposed) throw new GssUsageError('ERR_GSS_DISPOSED', 'this channel has been disposed');
  }

  #run(operation: 'wrap' | 'unwrap', data: Buffer, op: () => Buffer | Promise<Buffer>): Promise<Buffer> {
    if (!Buffer.isBuffer(data)) return Promise.reject(new GssUsageError('ERR_GSS_INVALID_ARG', 'data must be a Buffer'));
    const p = this.#queue.then(() => {
      this.#check();
      return op();
    }).catch((e: unknown) => {
      throw toGssError(e, { operation, target: this.target });
    });
    this.#queue = p.catch(() => undefined);
    return p;
  }
}
