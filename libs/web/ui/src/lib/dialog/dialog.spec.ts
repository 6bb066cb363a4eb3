import { Component, signal } from '@angular/core';
import { TestBed } from '@angular/core/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { Dialog } from './dialog';
import { DialogHarness } from '../testing/harnesses';

@Component({
  imports: [Dialog],
  template: `
    <button type="button" id="opener" (click)="open.set(true)">Open</button>
    @if (open()) {
      <fw-dialog title="Share report.txt" testId="share-dialog" (closed)="open.set(false)">
        <input id="first" />
        <button type="button" id="last">Go</button>
      </fw-dialog>
    }
  `,
})
class Host {
  readonly open = signal(false);
}

describe('Dialog', () => {
  afterEach(() => document.body.replaceChildren());

  async function openDialog() {
    const fixture = TestBed.createComponent(Host);
    document.body.appendChild(fixture.nativeElement);
    await fixture.whenStable();
    const opener = fixture.nativeElement.querySelector('#opener') as HTMLButtonElement;
    opener.focus();
    opener.click();
    await fixture.whenStable();
    return { fixture, opener, dialog: new DialogHarness(fixture.nativeElement, 'share-dialog') };
  }

  it('is a labelled modal dialog and focuses its first control', async () => {
    const { dialog } = await openDialog();
    expect(dialog.isOpen()).toBe(true);
    expect(dialog.panel?.getAttribute('aria-modal')).toBe('true');
    expect(dialog.title()).toBe('Share report.txt');
    expect((document.activeElement as HTMLElement).getAttribute('aria-label')).toBe('Close');
  });

  it('closes on Escape and gives focus back to the opener', async () => {
    const { fixture, dialog, opener } = await openDialog();
    dialog.pressEscape();
    await fixture.whenStable();
    expect(dialog.isOpen()).toBe(false);
    expect(document.activeElement).toBe(opener);
  });

  it('closes with the Close button', async () => {
    const { fixture, dialog } = await openDialog();
    dialog.clickClose();
    await fixture.whenStable();
    expect(dialog.isOpen()).toBe(false);
  });

  it('closes on a click on the backdrop, not inside the panel', async () => {
    const { fixture, dialog } = await openDialog();
    dialog.panel?.querySelector<HTMLElement>('#first')?.click();
    await fixture.whenStable();
    expect(dialog.isOpen()).toBe(true);
    fixture.nativeElement.querySelector('.fw-backdrop').click();
    await fixture.whenStable();
    expect(dialog.isOpen()).toBe(false);
  });

  it('keeps Tab inside the dialog', async () => {
    const { dialog } = await openDialog();
    const last = dialog.panel?.querySelector<HTMLElement>('#last');
    last?.focus();
    last?.dispatchEvent(new KeyboardEvent('keydown', { key: 'Tab', bubbles: true, cancelable: true }));
    expect((document.activeElement as HTMLElement).getAttribute('aria-label')).toBe('Close');

    const close = document.activeElement as HTMLElement;
    close.dispatchEvent(
      new KeyboardEvent('keydown', { key: 'Tab', shiftKey: true, bubbles: true, cancelable: true }),
    );
    expect(document.activeElement).toBe(last);
  });
});
