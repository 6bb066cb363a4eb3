import type { DelegationKind, DelegationMode } from '../contract';

/** What a session remembers. No secrets: the credential lives in the vault of the replica that accepted it. */
export interface SessionData {
  principal: string;
  user: string;
  delegation: DelegationKind;
  mode: DelegationMode;
  groups: string[];
  isAdmin: boolean;
  /** Epoch ms. */
  createdAt: number;
  /** Epoch ms: never later than the credential, nor than createdAt + the maximum age. */
  expiresAt: number;
}

/**
 * Where sessions live: memory for one replica, Redis (or another shared store) for several.
 * Implementations must expire entries by themselves at `expiresAt`.
 */
export interface SessionStore {
  get(id: string): Promise<SessionData | null>;
  set(id: string, data: SessionData): Promise<void>;
  delete(id: string): Promise<void>;
  /** Release resources at shutdown. */
  close?(): Promise<void>;
}

/** The default store: a Map with expiry, for a single API process. */
export class MemorySessionStore implements SessionStore {
  private readonly sessions = new Map<string, SessionData>();

  async get(id: string): Promise<SessionData | null> {
    const s = this.sessions.get(id);
    if (!s) return null;
    if (s.expiresAt <= Date.now()) {
      this.sessions.delete(id);
      return null;
    }
    return s;
  }

  async set(id: string, data: SessionData): Promise<void> {
    this.sessions.set(id, data);
  }

  async delete(id: string): Promise<void> {
    this.sessions.delete(id);
  }

  /** Sessions held now (for tests and metrics). */
  get size(): number {
    return this.sessions.size;
  }
}
