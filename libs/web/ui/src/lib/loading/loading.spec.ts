import { TestBed } from '@angular/core/testing';
import { describe, expect, it } from 'vitest';
import { Loading } from './loading';
import { LoadingHarness } from '../testing/harnesses';

describe('Loading', () => {
  it('is a busy status with its label', async () => {
    const fixture = TestBed.createComponent(Loading);
    fixture.componentRef.setInput('label', 'Loading files…');
    await fixture.whenStable();
    const el: HTMLElement = fixture.nativeElement;
    expect(new LoadingHarness(el).isLoading()).toBe(true);
    expect(el.querySelector('[role="status"]')?.textContent?.trim()).toBe('Loading files…');
  });
});
