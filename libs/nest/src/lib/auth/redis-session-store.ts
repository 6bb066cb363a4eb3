import { Logger } from '@nestjs/common';
import Redis from 'ioredis';
import { ApiException } from './errors';
import type { SessionData, SessionStore } from './session-store';

/**
 * Sessions shared by several API replicas, in Redis. Only non-secret session data goes there
 * (principal, groups, expiry): credentials never leave the replica that accepted them. Entries
 * expire in Redis at the session's end. When Redis does not answer, session lookups fail fast
 * with a 503 that says so (no queueing behind a dead connection), and work again once it is back.
 */
export class RedisSessionStore implements SessionStore {
  private readonly log = new Logger(RedisSessionStore.name);
  private readonly redis: Redis;

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
    await this.call(() => this.redis.set(this.prefix + id, JSON.stringify(data), 'PX', ttl));
  }

  async delete(id: string): Promise<void> {
    await this.call(() => this.redis.del(this.prefix + id));
  }

  async close(): Promise<void> {
    this.redis.disconnect();
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
