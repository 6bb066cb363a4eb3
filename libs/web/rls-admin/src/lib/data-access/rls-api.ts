import { HttpClient } from '@angular/common/http';
import { Injectable, inject } from '@angular/core';
import type {
  RlsApplyResponse,
  RlsMappingRequest,
  RlsModelsResponse,
  RlsPreviewResponse,
  RlsTargetResponse,
} from '@forwardable/shared/contracts';
import { Observable } from 'rxjs';

/** The API's setup-wizard endpoints (`/api/rls/*`, admins only). */
@Injectable({ providedIn: 'root' })
export class RlsApi {
  private readonly http = inject(HttpClient);

  target(): Observable<RlsTargetResponse> {
    return this.http.get<RlsTargetResponse>('/api/rls/target');
  }

  models(): Observable<RlsModelsResponse> {
    return this.http.get<RlsModelsResponse>('/api/rls/models');
  }

  preview(mapping: RlsMappingRequest): Observable<RlsPreviewResponse> {
    return this.http.post<RlsPreviewResponse>('/api/rls/preview', mapping);
  }

  apply(mapping: RlsMappingRequest): Observable<RlsApplyResponse> {
    return this.http.post<RlsApplyResponse>('/api/rls/apply', mapping);
  }
}
