import { Component, signal } from '@angular/core';
import { ComponentFixture, TestBed } from '@angular/core/testing';
import type { TreeResponse } from '@forwardable/shared/contracts';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileTree } from './file-tree';
import { aDirectory, aFileSummary } from '../../testing/fixtures';

@Component({
  imports: [FileTree],
  template: `<fw-file-tree
    [tree]="tree"
    [selectedDirectoryId]="selected()"
    (directorySelected)="selected.set($event); events.push('dir:' + $event)"
    (fileOpened)="events.push('file:' + $event)"
  />`,
})
class Host {
  readonly tree: TreeResponse = {
    directories: [
      aDirectory({ id: 'd1', name: 'Reports' }),
      aDirectory({ id: 'd2', name: 'Q1', parentId: 'd1' }),
      aDirectory({ id: 'd3', name: 'Archive' }),
      // Shared with alice without its parent: shown at the top.
      aDirectory({ id: 'd9', name: 'Shared by bob', parentId: 'hidden', owner: 'bob' }),
    ],
    files: [
      aFileSummary({ id: 'f1', name: 'summary.txt', directoryId: 'd1' }),
      aFileSummary({ id: 'f2', name: 'todo.txt' }),
    ],
  };
  readonly selected = signal<string | null>(null);
  readonly events: string[] = [];
}

describe('FileTree', () => {
  let fixture: ComponentFixture<Host>;
  let el: HTMLElement;

  const items = () => Array.from(el.querySelectorAll<HTMLElement>('[data-testid="tree-item"]'));
  const names = () => items().map((i) => i.querySelector('.tree__name')?.textContent);
  const item = (name: string) =>
    items().find((i) => i.querySelector('.tree__name')?.textContent === name) as HTMLElement;
  const press = async (target: HTMLElement, key: string) => {
    target.dispatchEvent(new KeyboardEvent('keydown', { key, bubbles: true, cancelable: true }));
    await fixture.whenStable();
  };

  beforeEach(async () => {
    fixture = TestBed.createComponent(Host);
    el = fixture.nativeElement;
    document.body.appendChild(el);
    await fixture.whenStable();
  });

  afterEach(() => document.body.replaceChildren());

  it('is an ARIA tree: top node open, folders before files, orphans at the top', () => {
    expect(el.querySelector('[role="tree"]')?.getAttribute('data-testid')).toBe('tree');
    expect(names()).toEqual(['All files', 'Archive', 'Reports', 'Shared by bob', 'todo.txt']);
    expect(item('All files').getAttribute('aria-expanded')).toBe('true');
    expect(item('Reports').getAttribute('aria-expanded')).toBe('false');
    expect(item('Reports').getAttribute('aria-level')).toBe('2');
    expect(item('todo.txt').hasAttribute('aria-expanded')).toBe(false);
  });

  it('has one tab stop, on the selected folder', () => {
    expect(
      items()
        .filter((i) => i.tabIndex === 0)
        .map((i) => i.textContent?.trim()),
    ).toEqual([expect.stringContaining('All files')]);
  });

  it('moves with the arrow keys, Home and End', async () => {
    item('All files').focus();
    await press(item('All files'), 'ArrowDown');
    expect(document.activeElement).toBe(item('Archive'));
    await press(item('Archive'), 'ArrowDown');
    expect(document.activeElement).toBe(item('Reports'));
    expect(item('Reports').tabIndex).toBe(0);
    await press(item('Reports'), 'End');
    expect(document.activeElement).toBe(item('todo.txt'));
    await press(item('todo.txt'), 'Home');
    expect(document.activeElement).toBe(item('All files'));
    await press(item('All files'), 'ArrowUp');
    expect(document.activeElement).toBe(item('All files'));
  });

  it('opens a folder with ArrowRight, enters it, and goes back with ArrowLeft', async () => {
    item('Reports').focus();
    await press(item('Reports'), 'ArrowRight');
    expect(item('Reports').getAttribute('aria-expanded')).toBe('true');
    expect(names()).toEqual([
      'All files',
      'Archive',
      'Reports',
      'Q1',
      'summary.txt',
      'Shared by bob',
      'todo.txt',
    ]);
    expect(item('Q1').getAttribute('aria-level')).toBe('3');

    await press(item('Reports'), 'ArrowRight');
    expect(document.activeElement).toBe(item('Q1'));
    await press(item('Q1'), 'ArrowLeft');
    expect(document.activeElement).toBe(item('Reports'));
    await press(item('Reports'), 'ArrowLeft');
    expect(item('Reports').getAttribute('aria-expanded')).toBe('false');
    expect(names()).not.toContain('Q1');
  });

  it('Enter on a folder selects it; Enter on a file opens it', async () => {
    await press(item('Reports'), 'Enter');
    expect(fixture.componentInstance.events).toEqual(['dir:d1']);
    expect(item('Reports').getAttribute('aria-selected')).toBe('true');
    expect(item('Reports').getAttribute('aria-expanded')).toBe('true');

    await press(item('summary.txt'), 'Enter');
    await press(item('All files'), ' ');
    expect(fixture.componentInstance.events).toEqual(['dir:d1', 'file:f1', 'dir:null']);
  });

  it('opens items on click too', async () => {
    item('todo.txt').click();
    await fixture.whenStable();
    expect(fixture.componentInstance.events).toEqual(['file:f2']);
  });
});
