import { Logger } from '@nestjs/common';
import Redis from 'ioredis';
import { ApiException } from './errors';
import type { EndedSession, SessionData, SessionStore } from './session-store';

/**
 * Sessions shared by several API replicas, in Redis. Only non-secret session data goes there
 * (principal, groups, expiry): credentials never leave the replica that accepted them. Entries
 * expire in Redis at the session's end. When Redis does not answer, session lookups fail fast
 * with a 503 that says so (no queueing behind a dead connection), and work again once it is back.
 *
 * Each principal's sessions are indexed in a sorted set (by creation) for the per-user cap, and
 * ended sessions are announced on a pub/sub channel (`<prefix>ended`) so that every replica ends
 * its own credential lease and pool for them at once, not at expiry.
 */
export class RedisSessionStore implements SessionStore {
  private readonly log = new Logger(RedisSessionStore.name);
  private readonly redis: Redis;
  private subscriber: Redis | null = null;
  private readonly listeners: ((ended: EndedSession) => void)[] = [];

  constructor(url: string, private readonly prefix = 'forwardable:session:') {
    this.redis = new Redis(url, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      connectTimeout: 2000,
      retryStrategy: (times) => Math.min(times * 200, 2000),
      lazyConnect: false,
    });
    // ioredis reports every reconnect attempt as an error event: keep the log to state changes.
    let down = false;
    this.redis.on('error', (err) => {
      if (!down) this.log.warn(`Redis session store unavailable: ${err.message}`);
      down = true;
    });
    this.redis.on('ready', () => {
      if (down) this.log.log('Redis session store is back');
      down = false;
    });
  }

  /** Wait (bounded) for the first connection, so a healthy start serves at once. */
  async ready(timeoutMs = 5000): Promise<boolean> {
    if (this.redis.status === 'ready') return true;
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve(false), timeoutMs);
      this.redis.once('ready', () => {
        clearTimeout(t);
        resolve(true);
      });
    });
  }

  async get(id: string): Promise<SessionData | null> {
    const raw = await this.call(() => this.redis.get(this.prefix + id));
    return raw ? (JSON.parse(raw) as SessionData) : null;
  }

  async set(id: string, data: SessionData): Promise<void> {
    const ttl = Math.max(1, data.expiresAt - Date.now());
    const index = this.indexKey(data.principal);
    await this.call(() =>
      this.redis
        .multi()
        .set(this.prefix + id, JSON.stringify(data), 'PX', ttl)
        .zadd(index, data.createdAt, id)
        // The index lives as long as the principal's newest session (any Redis version; an
        // older session outliving it is rare: only when a newer credential ends sooner).
        .pexpire(index, ttl)
        .exec(),
    );
  }

  async delete(id: string): Promise<void> {
    const data = await this.get(id);
    await this.call(() => {
      const m = this.redis.multi().del(this.prefix + id);
      if (data) m.zrem(this.indexKey(data.principal), id);
      return m.exec();
    });
  }

  async idsOf(principal: string): Promise<string[]> {
    const index = this.indexKey(principal);
    const ids = await this.call(() => this.redis.zrange(index, 0, -1));
    if (!ids.length) return [];
    const alive = await this.call(() => this.redis.mget(ids.map((id) => this.prefix + id)));
    // Sessions that expired in Redis leave their id in the index: drop them here.
    const dead = ids.filter((_, i) => alive[i] === null);
    if (dead.length) await this.call(() => this.redis.zrem(index, ...dead));
    return ids.filter((_, i) => alive[i] !== null);
  }

  async publishEnded(ended: EndedSession): Promise<void> {
    await this.call(() => this.redis.publish(this.channel, JSON.stringify(ended)));
  }

  onEnded(listener: (ended: EndedSession) => void): void {
    this.listeners.push(listener);
    if (this.subscriber) return;
    // A subscribed connection can do nothing else: a second one. ioredis re-subscribes after a reconnect.
    const sub = this.redis.duplicate({ enableOfflineQueue: true });
    this.subscriber = sub;
    sub.on('error', () => undefined); // the main connection already reports outages
    sub.on('message', (channel: string, message: string) => {
      if (channel !== this.channel) return;
      let ended: EndedSession;
      try {
        ended = JSON.parse(message) as EndedSession;
      } catch {
        return;
      }
      if (typeof ended?.id !== 'string' || typeof ended.principal !== 'string') return;
      if (ended.successor !== undefined && typeof ended.successor !== 'string') return;
      for (const l of this.listeners) l(ended);
    });
    void sub.subscribe(this.channel).catch((err: Error) => this.log.warn(`cannot subscribe to ended sessions: ${err.message}`));
  }

  async close(): Promise<void> {
    this.subscriber?.disconnect();
    this.redis.disconnect();
  }

  private get channel(): string {
    return `${this.prefix}ended`;
  }

  private indexKey(principal: string): string {
    return `${this.prefix}by-principal:${principal}`;
  }

  private async call<T>(f: () => Promise<T>): Promise<T> {
    try {
      return await f();
    } catch (err) {
      throw new ApiException(503, 'SESSION_STORE_UNAVAILABLE', 'the session store (Redis) is not available', 'Try again in a moment; if it persists, tell your administrator.', {
        cause: err,
      });
    }
  }
}
