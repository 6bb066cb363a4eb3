import { Component, signal } from '@angular/core';
import { TestBed } from '@angular/core/testing';
import { describe, expect, it } from 'vitest';
import { ErrorBanner, type ShownError } from './error-banner';
import { ErrorBannerHarness } from '../testing/harnesses';

@Component({
  imports: [ErrorBanner],
  template: `<fw-error-banner [error]="error()" [dismissible]="true" (dismissed)="error.set(null)" />`,
})
class Host {
  readonly error = signal<ShownError | null>(null);
}

describe('ErrorBanner', () => {
  async function setup(error: ShownError | null) {
    const fixture = TestBed.createComponent(Host);
    fixture.componentInstance.error.set(error);
    await fixture.whenStable();
    return { fixture, banner: new ErrorBannerHarness(fixture.nativeElement) };
  }

  it('renders nothing without an error', async () => {
    const { banner } = await setup(null);
    expect(banner.isShown()).toBe(false);
  });

  it('shows the API message and hint in an alert', async () => {
    const { banner } = await setup({ message: 'permission denied for table files', hint: 'Ask the owner' });
    expect(banner.isShown()).toBe(true);
    expect(banner.role()).toBe('alert');
    expect(banner.message()).toBe('permission denied for table files');
    expect(banner.hint()).toBe('Ask the owner');
  });

  it('lists field errors and can be dismissed', async () => {
    const { fixture, banner } = await setup({
      message: 'Invalid input',
      details: ['name must not be empty'],
    });
    const el: HTMLElement = fixture.nativeElement;
    expect(el.querySelector('li')?.textContent).toBe('name must not be empty');
    el.querySelector<HTMLButtonElement>('button')?.click();
    await fixture.whenStable();
    expect(banner.isShown()).toBe(false);
  });
});
