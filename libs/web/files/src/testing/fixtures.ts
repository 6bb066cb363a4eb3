import { provideHttpClient, withInterceptors } from '@angular/common/http';
import { HttpTestingController, provideHttpClientTesting } from '@angular/common/http/testing';
import { EnvironmentProviders, Provider } from '@angular/core';
import { TestBed } from '@angular/core/testing';
import { provideRouter, withComponentInputBinding } from '@angular/router';
import { AuthService, apiErrorInterceptor, csrfInterceptor } from '@forwardable/web/auth';
import type { DirectoryDto, FileDto, FileSummaryDto, MeResponse } from '@forwardable/shared/contracts';
import { filesRoutes } from '../lib/files.routes';

/** Test data and set-up shared by this feature's specs. */

export function aDirectory(overrides: Partial<DirectoryDto> = {}): DirectoryDto {
  return {
    id: 'd1',
    parentId: null,
    name: 'Reports',
    owner: 'alice',
    access: 'owner',
    createdAt: '2025-01-01T10:00:00Z',
    updatedAt: '2025-01-01T10:00:00Z',
    ...overrides,
  };
}

export function aFileSummary(overrides: Partial<FileSummaryDto> = {}): FileSummaryDto {
  return {
    id: 'f1',
    directoryId: null,
    name: 'notes.txt',
    owner: 'alice',
    size: 12,
    updatedAt: '2025-01-02T10:00:00Z',
    access: 'owner',
    canEdit: true,
    ...overrides,
  };
}

export function aFile(overrides: Partial<FileDto> = {}): FileDto {
  return { ...aFileSummary(), content: 'hello world', createdAt: '2025-01-01T10:00:00Z', ...overrides };
}

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

/** The providers the app uses: the feature's routes, input binding, the real interceptors. */
export function provideFilesTesting(): (Provider | EnvironmentProviders)[] {
  return [
    provideRouter(filesRoutes, withComponentInputBinding()),
    provideHttpClient(withInterceptors([csrfInterceptor, apiErrorInterceptor])),
    provideHttpClientTesting(),
  ];
}

/** Signs `me` in through the real AuthService (GET /api/auth/me answered by the test backend). */
export async function signIn(me: MeResponse = aUser()): Promise<void> {
  const auth = TestBed.inject(AuthService);
  const done = auth.ensureLoaded();
  TestBed.inject(HttpTestingController).expectOne('/api/auth/me').flush(me);
  await done;
}

/** `ApiError` body and status for `TestRequest.flush`. */
export function apiError(status: number, code: string, message: string, hint?: string) {
  return [
    { statusCode: status, code, message, hint },
    { status, statusText: 'Error' },
  ] as const;
}
