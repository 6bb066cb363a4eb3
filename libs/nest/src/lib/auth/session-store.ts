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

/** A session that ended, as announced to every replica. */
export interface EndedSession {
  id: string;
  principal: string;
  /**
   * Set when the session was replaced by a re-authentication: its new id. A replica holding a
   * credential for `id` keeps it for `successor` (same principal), so a rotation costs no
   * negotiation on the other replicas; `id` itself is dead everywhere.
   */
  successor?: string;
}

/**
 * Where sessions live: memory for one replica, Redis (or another shared store) for several.
 * Implementations must expire entries by themselves at `expiresAt`, and not keep expired ones.
 */
export interface SessionStore {
  get(id: string): Promise<SessionData | null>;
  set(id: string, data: SessionData): Promise<void>;
  delete(id: string): Promise<void>;
  /** The ids of the live sessions of `principal`, oldest first (for the per-user cap). */
  idsOf(principal: string): Promise<string[]>;
  /**
   * Tell every replica sharing the store that a session ended (logout, cap), so each ends its own
   * credential lease for it at once. A single-replica store may leave it out.
   */
  publishEnded?(ended: EndedSession): Promise<void>;
  /** Be told of sessions ended by any replica (this one included). */
  onEnded?(listener: (ended: EndedSession) => void): void;
  /** Release resources at shutdown. */
  close?(): Promise<void>;
}

/** The default store: a Map with expiry, for a single API process. Expired entries are swept. */
export class MemorySessionStore implements SessionStore {
  private readonly sessions = new Map<string, SessionData>();
  private readonly byPrincipal = new Map<string, Set<string>>();
  private readonly sweeper: NodeJS.Timeout;

  /** @param sweepIntervalMs - how often expired sessions are dropped (default 60 s). */
  constructor(sweepIntervalMs = 60_000) {
    this.sweeper = setInterval(() => this.sweep(), sweepIntervalMs);
    this.sweeper.unref();
  }

  async get(id: string): Promise<SessionData | null> {
    const s = this.sessions.get(id);
    if (!s) return null;
    if (s.expiresAt <= Date.now()) {
      this.drop(id, s);
      return null;
    }
    return s;
  }

  async set(id: string, data: SessionData): Promise<void> {
    const old = this.sessions.get(id);
    if (old) this.drop(id, old);
    this.sessions.set(id, data);
    let ids = this.byPrincipal.get(data.principal);
    if (!ids) this.byPrincipal.set(data.principal, (ids = new Set()));
    ids.add(id);
  }

  async delete(id: string): Promise<void> {
    const s = this.sessions.get(id);
    if (s) this.drop(id, s);
  }

  async idsOf(principal: string): Promise<string[]> {
    const now = Date.now();
    const live = [...(this.byPrincipal.get(principal) ?? [])]
      .map((id) => [id, this.sessions.get(id)] as const)
      .filter((e): e is readonly [string, SessionData] => !!e[1] && e[1].expiresAt > now);
    return live.sort((a, b) => a[1].createdAt - b[1].createdAt).map(([id]) => id);
  }

  /** Drop every expired session now (also done every sweep interval). Returns how many. */
  sweep(): number {
    const now = Date.now();
    let n = 0;
    for (const [id, s] of this.sessions) {
      if (s.expiresAt <= now) {
        this.drop(id, s);
        n++;
      }
    }
    return n;
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
  }

  /** Sessions held now (for tests and metrics). */
  get size(): number {
    return this.sessions.size;
  }

  private drop(id: string, s: SessionData): void {
    this.sessions.delete(id);
    const ids = this.byPrincipal.get(s.principal);
    ids?.delete(id);
    if (ids && !ids.size) this.byPrincipal.delete(s.principal);
  }
}
