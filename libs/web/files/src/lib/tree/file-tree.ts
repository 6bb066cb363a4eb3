import {
  ChangeDetectionStrategy,
  Component,
  ElementRef,
  computed,
  input,
  linkedSignal,
  output,
  signal,
  viewChildren,
} from '@angular/core';
import type { TreeResponse } from '@forwardable/shared/contracts';

/** Key of the synthetic top node ("All files"). */
const ROOT = 'root';

interface Node {
  key: string;
  kind: 'root' | 'directory' | 'file';
  id: string | null;
  name: string;
  owner?: string;
  children: Node[];
}

/** One visible line of the tree, flattened (ARIA level / set size / position carry the shape). */
export interface TreeRow {
  node: Node;
  level: number;
  setSize: number;
  position: number;
  parentKey: string | null;
  expanded: boolean | null;
}

function buildTree(tree: TreeResponse): Node {
  const byName = (a: Node, b: Node) => a.name.localeCompare(b.name);
  const dirs = new Map<string, Node>();
  for (const d of tree.directories) {
    dirs.set(d.id, {
      key: `d:${d.id}`,
      kind: 'directory',
      id: d.id,
      name: d.name,
      owner: d.owner,
      children: [],
    });
  }
  const root: Node = { key: ROOT, kind: 'root', id: null, name: 'All files', children: [] };
  // A folder shared without its parent shows at the top: the user cannot see the parent.
  for (const d of tree.directories) {
    const parent = (d.parentId && dirs.get(d.parentId)) || root;
    parent.children.push(dirs.get(d.id) as Node);
  }
  const folderCount = new Map<Node, number>();
  for (const [, node] of [...dirs, [ROOT, root] as const]) {
    node.children.sort(byName);
    folderCount.set(node, node.children.length);
  }
  for (const f of tree.files) {
    const parent = (f.directoryId && dirs.get(f.directoryId)) || root;
    parent.children.push({
      key: `f:${f.id}`,
      kind: 'file',
      id: f.id,
      name: f.name,
      owner: f.owner,
      children: [],
    });
  }
  for (const [, node] of [...dirs, [ROOT, root] as const]) {
    const folders = folderCount.get(node) ?? 0;
    node.children = [...node.children.slice(0, folders), ...node.children.slice(folders).sort(byName)];
  }
  return root;
}

/**
 * Every folder and file the user may see, as an ARIA tree: one tab stop (roving tabindex);
 * Up/Down move, Right opens a folder or enters it, Left closes it or goes to its parent,
 * Home/End jump, Enter or Space opens the item (a folder's listing, a file's view).
 */
@Component({
  selector: 'fw-file-tree',
  changeDetection: ChangeDetectionStrategy.OnPush,
  templateUrl: './file-tree.html',
  styleUrl: './file-tree.css',
})
export class FileTree {
  readonly tree = input.required<TreeResponse>();
  /** Folder shown in the listing (null: the top level), highlighted as selected. */
  readonly selectedDirectoryId = input<string | null>(null);
  readonly directorySelected = output<string | null>();
  readonly fileOpened = output<string>();

  private readonly root = computed(() => buildTree(this.tree()));
  /** Open folders: the top node always, plus the ones the user opened. */
  private readonly expanded = signal<ReadonlySet<string>>(new Set([ROOT]));
  protected readonly rows = computed(() => {
    const out: TreeRow[] = [];
    const open = this.expanded();
    const walk = (node: Node, level: number, setSize: number, position: number, parentKey: string | null) => {
      const isOpen = node.kind === 'file' ? null : open.has(node.key);
      out.push({ node, level, setSize, position, parentKey, expanded: isOpen });
      if (isOpen) node.children.forEach((c, i) => walk(c, level + 1, node.children.length, i + 1, node.key));
    };
    walk(this.root(), 1, 1, 1, null);
    return out;
  });
  protected readonly selectedKey = computed(() => {
    const id = this.selectedDirectoryId();
    return id ? `d:${id}` : ROOT;
  });
  /** The item holding the tab stop; follows the selection until the user moves. */
  protected readonly activeKey = linkedSignal(() => this.selectedKey());
  private readonly items = viewChildren<ElementRef<HTMLElement>>('item');

  protected onKeydown(event: KeyboardEvent, row: TreeRow): void {
    const rows = this.rows();
    const index = rows.indexOf(row);
    const handled = () => {
      event.preventDefault();
      event.stopPropagation();
    };
    switch (event.key) {
      case 'ArrowDown':
        handled();
        this.focusRow(rows[Math.min(index + 1, rows.length - 1)]);
        break;
      case 'ArrowUp':
        handled();
        this.focusRow(rows[Math.max(index - 1, 0)]);
        break;
      case 'Home':
        handled();
        this.focusRow(rows[0]);
        break;
      case 'End':
        handled();
        this.focusRow(rows[rows.length - 1]);
        break;
      case 'ArrowRight':
        handled();
        if (row.expanded === false) this.setExpanded(row.node.key, true);
        else if (row.expanded && row.node.children.length) this.focusRow(rows[index + 1]);
        break;
      case 'ArrowLeft': {
        handled();
        if (row.expanded && row.node.kind !== 'root') this.setExpanded(row.node.key, false);
        else {
          const parent = rows.find((r) => r.node.key === row.parentKey);
          if (parent) this.focusRow(parent);
        }
        break;
      }
      case 'Enter':
      case ' ':
        handled();
        this.activate(row);
        break;
    }
  }

  protected activate(row: TreeRow): void {
    this.activeKey.set(row.node.key);
    if (row.node.kind === 'file') {
      this.fileOpened.emit(row.node.id as string);
      return;
    }
    if (row.node.kind === 'directory') this.setExpanded(row.node.key, true);
    this.directorySelected.emit(row.node.id);
  }

  protected toggle(event: Event, row: TreeRow): void {
    event.stopPropagation();
    this.activeKey.set(row.node.key);
    this.setExpanded(row.node.key, !row.expanded);
  }

  private setExpanded(key: string, open: boolean): void {
    this.expanded.update((set) => {
      const next = new Set(set);
      if (open) next.add(key);
      else next.delete(key);
      return next;
    });
  }

  private focusRow(row: TreeRow | undefined): void {
    if (!row) return;
    this.activeKey.set(row.node.key);
    const index = this.rows().indexOf(row);
    this.items()[index]?.nativeElement.focus();
  }
}
