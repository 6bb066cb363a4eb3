/**
 * The file browser: folder tree, folder listing, file view/edit, create, share, search, and the
 * data-access service for the API's file endpoints. Row-level security in PostgreSQL decides
 * what each user sees; this feature only shows it (owners get edit, delete and share buttons).
 * @packageDocumentation
 */
export { filesRoutes } from './lib/files.routes';
export { FilesApi, type ShareKind } from './lib/data-access/files-api';
export { FileTree } from './lib/tree/file-tree';
export { FilesPage } from './lib/files-page/files-page';
export { FileView } from './lib/file-view/file-view';
export { PermissionsDialog } from './lib/permissions/permissions-dialog';
export { SearchPage } from './lib/search/search-page';
export { SqlPage } from './lib/sql/sql-page';
