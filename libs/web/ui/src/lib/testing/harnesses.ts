/**
 * Test harnesses for the shared UI pieces: small page objects over the rendered DOM, so specs
 * (here and in the features) read the banner, the loading state and dialogs the same way and do
 * not depend on their markup. DOM-only (no `@angular/cdk`), tree-shaken out of the app.
 */

/** Reads and drives `<fw-error-banner>` found inside `root`. */
export class ErrorBannerHarness {
  constructor(private readonly root: ParentNode) {}

  private get host(): HTMLElement | null {
    return this.root.querySelector<HTMLElement>('[data-testid="error"]');
  }
  isShown(): boolean {
    return this.host !== null;
  }
  role(): string | null {
    return this.host?.getAttribute('role') ?? null;
  }
  message(): string {
    return this.host?.querySelector('.fw-error__message')?.textContent?.trim() ?? '';
  }
  hint(): string {
    return this.host?.querySelector('[data-testid="error-hint"]')?.textContent?.trim() ?? '';
  }
}

/** Reads `<fw-loading>` inside `root`. */
export class LoadingHarness {
  constructor(private readonly root: ParentNode) {}

  isLoading(): boolean {
    return this.root.querySelector('[data-testid="loading"][aria-busy="true"]') !== null;
  }
}

/** Reads and drives a `<fw-dialog>` inside `root`, found by its `testId`. */
export class DialogHarness {
  constructor(
    private readonly root: ParentNode,
    private readonly testId = 'dialog',
  ) {}

  get panel(): HTMLElement | null {
    return this.root.querySelector<HTMLElement>(`[role="dialog"][data-testid="${this.testId}"]`);
  }
  isOpen(): boolean {
    return this.panel !== null;
  }
  title(): string {
    const id = this.panel?.getAttribute('aria-labelledby');
    return (id && this.panel?.querySelector(`#${id}`)?.textContent?.trim()) || '';
  }
  pressEscape(): void {
    const target = this.panel ?? document;
    target.dispatchEvent(new KeyboardEvent('keydown', { key: 'Escape', bubbles: true }));
  }
  clickClose(): void {
    this.panel?.querySelector<HTMLButtonElement>('[data-testid="dialog-close"]')?.click();
  }
}
