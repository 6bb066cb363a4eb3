/** The file browser API: folders, files, sharing and search, with visibility decided by PostgreSQL RLS. */
export { FilesModule } from './lib/files.module';
export { FilesService } from './lib/files.service';
