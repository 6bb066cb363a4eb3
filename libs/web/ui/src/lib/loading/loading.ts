import { ChangeDetectionStrategy, Component, input } from '@angular/core';

/** A polite "loading" status: `aria-busy` while the content it stands for is on its way. */
@Component({
  selector: 'fw-loading',
  changeDetection: ChangeDetectionStrategy.OnPush,
  template: `
    <p class="fw-loading" role="status" aria-live="polite" aria-busy="true" data-testid="loading">
      <span class="fw-loading__spinner" aria-hidden="true"></span>{{ label() }}
    </p>
  `,
  styles: `
    .fw-loading {
      display: flex;
      align-items: center;
      gap: 0.5rem;
      color: #444;
      margin: 0.5rem 0;
    }
    .fw-loading__spinner {
      width: 1rem;
      height: 1rem;
      border: 2px solid #9ab;
      border-top-color: #1f3b57;
      border-radius: 50%;
      animation: fw-spin 0.8s linear infinite;
    }
    @keyframes fw-spin {
      to {
        transform: rotate(360deg);
      }
    }
    @media (prefers-reduced-motion: reduce) {
      .fw-loading__spinner {
        animation: none;
      }
    }
  `,
})
export class Loading {
  readonly label = input('Loading…');
}
