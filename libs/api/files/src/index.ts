/** The file browser API: folders, files, sharing and search, with visibility decided by PostgreSQL RLS. */
export { FilesModule } from './lib/files.module';
export { FilesService } from './lib/files.service';
export { DIRECTORY_CANDIDATES, FILE_CANDIDATES, listingStatements, OWN_OR_SHARED_FILES, SESSION_USER_TEXT, TOP_LEVEL_DIRECTORIES, TOP_LEVEL_FILES } from './lib/listing-sql';
export type { ListingStatements } from './lib/listing-sql';
