/** The setup wizard API: preview and apply row-level security with the administrator's own credential. */
export { RlsAdminModule } from './lib/rls-admin.module';
export { AdminGuard } from './lib/rls-admin.controller';
