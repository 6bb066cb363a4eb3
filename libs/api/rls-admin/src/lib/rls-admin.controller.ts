import { Body, Controller, Get, HttpCode, Injectable, Post, CanActivate, ExecutionContext, UseGuards } from '@nestjs/common';
import { Type } from 'class-transformer';
import { IsArray, IsOptional, IsString, Length, ValidateNested, ArrayMaxSize, ArrayMinSize } from 'class-validator';
import { ApiException, AuthUser, CurrentUser, UserDb } from '@forwardable/nest';
import { applyPolicies, introspect, MappingValidationError, parseMapping, planOnDatabase, renderSql, RlsMapping, RlsUsageError } from '@forwardable/rls';
import type { RlsApplyResponse, RlsModelsResponse, RlsPreviewResponse, RlsTargetResponse } from '@forwardable/shared/contracts';

class PermissionBody {
  @IsString() @Length(1, 63) table!: string;
  @IsString() @Length(1, 63) fkColumn!: string;
  @IsString() @Length(1, 63) granteeColumn!: string;
  @IsOptional() @IsString() @Length(1, 63) levelColumn?: string;
}

class ParentBody {
  @IsString() @Length(1, 63) column!: string;
  @IsString() @Length(1, 63) table!: string;
}

class TableBody {
  @IsString() @Length(1, 63) table!: string;
  @IsString() @Length(1, 63) ownerColumn!: string;
  @IsOptional() @ValidateNested() @Type(() => PermissionBody) permission?: PermissionBody;
  @IsOptional() @ValidateNested() @Type(() => ParentBody) parent?: ParentBody;
}

/** `POST /api/rls/preview` and `/apply` body. Identifiers are checked again against the live schema. */
export class MappingBody {
  @IsArray() @ArrayMinSize(1) @ArrayMaxSize(200) @ValidateNested({ each: true }) @Type(() => TableBody) tables!: TableBody[];
  @IsOptional() @IsString() @Length(1, 63) groupRole?: string;
}

/** Only members of the admin group may use the wizard. */
@Injectable()
export class AdminGuard implements CanActivate {
  canActivate(ctx: ExecutionContext): boolean {
    const user = ctx.switchToHttp().getRequest().user as AuthUser | undefined;
    if (!user?.isAdmin) throw new ApiException(403, 'NOT_ADMIN', 'the setup wizard is for administrators', 'Ask to be added to the forwardable-admins group.');
    return true;
  }
}

/**
 * The setup wizard (the reference paper's "managedb"): target, models with candidates, SQL
 * preview, apply. Everything runs on the administrator's own delegated connection, so the
 * database decides what they may see and change; its errors are reported as they are.
 */
@Controller('rls')
@UseGuards(AdminGuard)
export class RlsAdminController {
  constructor(private readonly db: UserDb) {}

  @Get('target')
  async target(@CurrentUser() u: AuthUser): Promise<RlsTargetResponse> {
    const ds = await this.db.of(u);
    const [r] = await ds.query('SELECT current_database() AS database, current_schema() AS schema, session_user AS "user"');
    return { database: r.database, schema: r.schema, user: r.user };
  }

  @Get('models')
  async models(@CurrentUser() u: AuthUser): Promise<RlsModelsResponse> {
    const model = await introspect(await this.db.of(u));
    return {
      tables: model.tables.map((t) => ({
        table: t.name,
        primaryKey: t.primaryKey,
        ownerCandidates: t.ownerCandidates,
        permissionCandidates: t.permissionCandidates,
        parentCandidates: t.foreignKeys.filter((fk) => fk.columns.length === 1 && fk.refSchema === model.schema).map((fk) => ({ column: fk.columns[0], table: fk.refTable })),
        rls: t.rls ?? { enabled: false, forced: false },
        policies: t.policies.map((p) => p.name),
      })),
    };
  }

  @Post('preview')
  @HttpCode(200)
  async preview(@CurrentUser() u: AuthUser, @Body() body: MappingBody): Promise<RlsPreviewResponse> {
    const plan = await this.run(() => this.db.of(u).then((ds) => planOnDatabase(ds, this.mapping(body))));
    return { sql: renderSql(plan, 'up') };
  }

  @Post('apply')
  @HttpCode(200)
  async apply(@CurrentUser() u: AuthUser, @Body() body: MappingBody): Promise<RlsApplyResponse> {
    const plan = await this.run(() => this.db.of(u).then((ds) => applyPolicies(ds, this.mapping(body))));
    return { applied: true, statements: plan.up.length };
  }

  private mapping(body: MappingBody): RlsMapping {
    return parseMapping({ tables: body.tables, ...(body.groupRole ? { groupRole: body.groupRole } : {}) });
  }

  /** Mapping problems are the admin's input: 400 with each issue. Database errors pass through the filter verbatim. */
  private async run<T>(f: () => Promise<T>): Promise<T> {
    try {
      return await f();
    } catch (err) {
      if (err instanceof MappingValidationError) {
        const e = new ApiException(400, 'INVALID_INPUT', 'the mapping does not fit the database', err.issues.map((i) => `${i.path}: ${i.message}`).join('; '));
        throw e;
      }
      if (err instanceof RlsUsageError) throw new ApiException(400, 'INVALID_INPUT', err.message);
      throw err;
    }
  }
}
