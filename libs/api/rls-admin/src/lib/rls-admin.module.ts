import { Module } from '@nestjs/common';
import { AdminGuard, RlsAdminController } from './rls-admin.controller';

/** The setup wizard API under `/api/rls` (admins only). */
@Module({ controllers: [RlsAdminController], providers: [AdminGuard] })
export class RlsAdminModule {}
