/**
 * @forwardable/nest declares the sign-on HTTP contract itself (a published package cannot depend
 * on the workspace's contracts library), and the SPA reads libs/shared/contracts: both must say
 * the same. The type checks below fail compilation (so this suite) when the shapes drift apart.
 */
import * as shared from '@forwardable/shared/contracts';
import * as nest from '@forwardable/nest';

type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const sameShapes: [
  Same<nest.MeResponse, shared.MeResponse>,
  Same<nest.LoginResponse, shared.LoginResponse>,
  Same<nest.LoginRequest, shared.LoginRequest>,
  Same<nest.ApiError, shared.ApiError>,
  Same<nest.ApiErrorCode, shared.ApiErrorCode>,
  Same<nest.DelegationKind, shared.DelegationKind>,
  Same<nest.DelegationMode, shared.DelegationMode>,
] = [true, true, true, true, true, true, true];

describe('the sign-on contract of @forwardable/nest and libs/shared/contracts', () => {
  it('has the same cookie and CSRF header names and values', () => {
    expect({ cookie: nest.SESSION_COOKIE, header: nest.CSRF_HEADER, value: nest.CSRF_VALUE }).toEqual({
      cookie: shared.SESSION_COOKIE,
      header: shared.CSRF_HEADER,
      value: shared.CSRF_VALUE,
    });
  });

  it('has the same response and error shapes (checked by the compiler)', () => {
    expect(sameShapes.every(Boolean)).toBe(true);
  });
});
