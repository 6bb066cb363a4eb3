import {
  ChangeDetectionStrategy,
  Component,
  DOCUMENT,
  ElementRef,
  afterNextRender,
  inject,
  input,
  output,
  viewChild,
} from '@angular/core';

let nextId = 0;

const FOCUSABLE =
  'a[href], button:not([disabled]), input:not([disabled]), select:not([disabled]), textarea:not([disabled]), [tabindex]:not([tabindex="-1"])';

/**
 * A modal dialog shell: an overlay holding a `role=dialog` panel. While it is shown, Tab stays
 * inside it, Escape (or the Close button, or a click on the backdrop) emits `closed`, and focus
 * returns to where it was when the dialog opened. The parent decides whether it is shown (`@if`).
 */
@Component({
  selector: 'fw-dialog',
  changeDetection: ChangeDetectionStrategy.OnPush,
  // Escape anywhere closes; so does a click on the backdrop (mouse users' habit).
  host: { '(document:keydown.escape)': 'close()', '(click)': 'closeOnBackdrop($event)' },
  template: `
    <div class="fw-backdrop"></div>
    <div
      #panel
      class="fw-dialog"
      role="dialog"
      aria-modal="true"
      [attr.aria-labelledby]="titleId"
      [attr.data-testid]="testId()"
      (keydown)="trapTab($event)"
    >
      <header class="fw-dialog__header">
        <h2 [id]="titleId">{{ title() }}</h2>
        <button
          type="button"
          class="fw-dialog__close"
          aria-label="Close"
          data-testid="dialog-close"
          (click)="close()"
        >
          ×
        </button>
      </header>
      <ng-content />
    </div>
  `,
  styles: `
    :host {
      position: fixed;
      inset: 0;
      z-index: 10;
      display: grid;
      place-items: center;
      padding: 0.5rem;
    }
    .fw-backdrop {
      position: absolute;
      inset: 0;
      background: rgb(0 0 0 / 0.45);
    }
    .fw-dialog {
      position: relative;
      background: #fff;
      color: #111;
      border-radius: 6px;
      padding: 1rem;
      width: min(32rem, 100%);
      max-height: calc(100vh - 1rem);
      overflow: auto;
      box-shadow: 0 8px 32px rgb(0 0 0 / 0.3);
    }
    .fw-dialog__header {
      display: flex;
      justify-content: space-between;
      align-items: center;
      gap: 0.5rem;
    }
    .fw-dialog__header h2 {
      margin: 0;
      font-size: 1.2rem;
      overflow-wrap: anywhere;
    }
    .fw-dialog__close {
      font-size: 1.25rem;
      line-height: 1;
      padding: 0.25rem 0.6rem;
    }
  `,
})
export class Dialog {
  readonly title = input.required<string>();
  /** `data-testid` of the panel, for end-to-end tests. */
  readonly testId = input('dialog');
  readonly closed = output<void>();

  protected readonly titleId = `fw-dialog-title-${nextId++}`;
  private readonly panel = viewChild.required<ElementRef<HTMLElement>>('panel');
  private readonly document = inject(DOCUMENT);
  /** Where focus was when the dialog opened: it goes back there on close. */
  private readonly opener = this.document.activeElement as HTMLElement | null;

  constructor() {
    afterNextRender(() => {
      const first = this.focusables()[0] ?? this.panel().nativeElement;
      first.focus();
    });
  }

  protected close(): void {
    this.closed.emit();
    this.opener?.focus?.();
  }

  protected closeOnBackdrop(event: MouseEvent): void {
    if ((event.target as Element | null)?.classList.contains('fw-backdrop')) this.close();
  }

  protected trapTab(event: KeyboardEvent): void {
    if (event.key !== 'Tab') return;
    const items = this.focusables();
    if (items.length === 0) return;
    const first = items[0];
    const last = items[items.length - 1];
    const active = this.document.activeElement;
    if (event.shiftKey && active === first) {
      event.preventDefault();
      last.focus();
    } else if (!event.shiftKey && active === last) {
      event.preventDefault();
      first.focus();
    }
  }

  private focusables(): HTMLElement[] {
    return Array.from(this.panel().nativeElement.querySelectorAll<HTMLElement>(FOCUSABLE));
  }
}
