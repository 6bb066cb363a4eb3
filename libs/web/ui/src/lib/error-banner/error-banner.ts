import { ChangeDetectionStrategy, Component, input, output } from '@angular/core';
import type { ApiError } from '@forwardable/shared/contracts';

/** What the banner shows: the API's own words (message, hint, field errors). */
export type ShownError = Pick<ApiError, 'message' | 'hint' | 'details'>;

/**
 * Shows an error as the API worded it: the message, then what to do about it (hint).
 * `role=alert`, so screen readers announce it when it appears.
 */
@Component({
  selector: 'fw-error-banner',
  changeDetection: ChangeDetectionStrategy.OnPush,
  template: `
    @if (error(); as e) {
      <div class="fw-error" role="alert" data-testid="error">
        <p class="fw-error__message">{{ e.message }}</p>
        @if (e.hint) {
          <p class="fw-error__hint" data-testid="error-hint">{{ e.hint }}</p>
        }
        @if (e.details?.length) {
          <ul>
            @for (d of e.details; track $index) {
              <li>{{ d }}</li>
            }
          </ul>
        }
        @if (dismissible()) {
          <button type="button" class="fw-link" (click)="dismissed.emit()">Dismiss</button>
        }
      </div>
    }
  `,
  styles: `
    .fw-error {
      border: 2px solid #b3261e;
      background: #fdecea;
      color: #410e0b;
      padding: 0.5rem 0.75rem;
      border-radius: 4px;
      margin: 0.5rem 0;
    }
    .fw-error p {
      margin: 0.25rem 0;
      overflow-wrap: anywhere;
    }
    .fw-error__message {
      font-weight: 600;
      white-space: pre-wrap;
    }
    ul {
      margin: 0.25rem 0;
      padding-left: 1.25rem;
    }
  `,
})
export class ErrorBanner {
  /** The error to show; nothing is rendered while it is null. */
  readonly error = input<ShownError | null | undefined>(null);
  /** Offer a Dismiss button. */
  readonly dismissible = input(false);
  readonly dismissed = output<void>();
}
