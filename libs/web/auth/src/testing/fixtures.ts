import type { MeResponse } from '@forwardable/shared/contracts';

/** A signed-in user as `GET /api/auth/me` returns it (specs only). */
export function aUser(overrides: Partial<MeResponse> = {}): MeResponse {
  return {
    principal: 'alice@FORWARDABLE.TEST',
    user: 'alice',
    delegation: 'forwarded',
    mode: 'unconstrained',
    expiresAt: '2030-01-01T10:00:00Z',
    groups: [],
    isAdmin: false,
    ...overrides,
  };
}
