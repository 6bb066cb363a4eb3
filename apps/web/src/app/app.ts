import { ChangeDetectionStrategy, Component, computed, inject, signal } from '@angular/core';
import { RouterLink, RouterLinkActive, RouterOutlet } from '@angular/router';
import { type ApiRequestError, AuthService, delegationLabel, toApiRequestError } from '@forwardable/web/auth';
import { ErrorBanner } from '@forwardable/web/ui';

/** The SPA shell: who is signed in and how, the main navigation, and the routed page. */
@Component({
  selector: 'fw-root',
  changeDetection: ChangeDetectionStrategy.OnPush,
  imports: [RouterOutlet, RouterLink, RouterLinkActive, ErrorBanner],
  templateUrl: './app.html',
  styleUrl: './app.css',
})
export class App {
  protected readonly auth = inject(AuthService);
  protected readonly delegation = computed(() => {
    const me = this.auth.me();
    return me ? delegationLabel(me.delegation) : '';
  });
  protected readonly signOutError = signal<ApiRequestError | null>(null);
  protected readonly signingOut = signal(false);

  constructor() {
    // Ask who the user is at start-up, whatever the first page (the banner needs it).
    void this.auth.ensureLoaded();
  }

  protected async signOut(): Promise<void> {
    this.signOutError.set(null);
    this.signingOut.set(true);
    try {
      await this.auth.logout();
    } catch (e) {
      this.signOutError.set(toApiRequestError(e));
    } finally {
      this.signingOut.set(false);
    }
  }
}
