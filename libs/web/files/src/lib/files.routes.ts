import { Route } from '@angular/router';
import { FilesPage } from './files-page/files-page';
import { FileView } from './file-view/file-view';
import { SearchPage } from './search/search-page';
import { SqlPage } from './sql/sql-page';

/** The file browser's pages (the app lazy-loads them behind its sign-in guard). */
export const filesRoutes: Route[] = [
  { path: '', pathMatch: 'full', component: FilesPage, title: 'Files · Forwardable' },
  { path: 'files/:id', component: FileView, title: 'File · Forwardable' },
  { path: 'search', component: SearchPage, title: 'Search · Forwardable' },
  { path: 'sql', component: SqlPage, title: 'Run SQL as yourself · Forwardable' },
];
