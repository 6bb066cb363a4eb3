import { Route } from '@angular/router';
import { SetupWizard } from './wizard/setup-wizard';

/** The wizard's page (the app lazy-loads it behind its admin guard). */
export const rlsAdminRoutes: Route[] = [{ path: '', component: SetupWizard, title: 'Setup · Forwardable' }];
