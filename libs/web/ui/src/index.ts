/**
 * Small presentational pieces shared by the SPA's features: error banner, loading indicator,
 * dialog shell. No data access, no routing.
 * @packageDocumentation
 */
export { ErrorBanner, type ShownError } from './lib/error-banner/error-banner';
export { Loading } from './lib/loading/loading';
export { Dialog } from './lib/dialog/dialog';
export { ErrorBannerHarness, LoadingHarness, DialogHarness } from './lib/testing/harnesses';
