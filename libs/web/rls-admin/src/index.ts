/**
 * The row-level security setup wizard (admins): target → models → SQL preview → apply → result.
 * @packageDocumentation
 */
export { rlsAdminRoutes } from './lib/rls-admin.routes';
export { RlsApi } from './lib/data-access/rls-api';
export { SetupWizard } from './lib/wizard/setup-wizard';
