import { Body, Controller, Get, HttpCode, Param, ParseUUIDPipe, Patch, Post } from '@nestjs/common';
import { IsIn, IsInt, IsOptional, IsString, Length, Matches, Max, Min } from 'class-validator';
import { ApiException, AuthUser, CurrentUser, UserDb } from '@forwardable/nest';
import { ExpenseReport, ReportApprover } from './entities';

/** `POST /api/reports` body. */
export class CreateReportDto {
  @IsString() @Length(1, 200) title!: string;
  @IsInt() @Min(0) @Max(100_000_000) amountCents!: number;
}

/** `PATCH /api/reports/:id` body. */
export class UpdateReportDto {
  @IsOptional() @IsString() @Length(1, 200) title?: string;
  @IsOptional() @IsInt() @Min(0) @Max(100_000_000) amountCents?: number;
}

/** `POST /api/reports/:id/approvers` body: the approver's user name (their database role) and level. */
export class ShareReportDto {
  @IsString() @Matches(/^[a-z0-9._-]{1,63}$/) approver!: string;
  /** `read` (an auditor, the default) or `write` (a manager, who may correct the report). */
  @IsOptional() @IsIn(['read', 'write']) level?: 'read' | 'write';
}

/**
 * Expense reports. There is no `WHERE employee = ...` anywhere: every query runs on the signed-in
 * user's own connection, and PostgreSQL's row-level security decides which rows exist for them.
 */
@Controller('reports')
export class ReportsController {
  constructor(private readonly db: UserDb) {}

  /** Reports the user may see: their own, and those shared with them as an approver. */
  @Get()
  async list(@CurrentUser() user: AuthUser): Promise<ExpenseReport[]> {
    const ds = await this.db.of(user);
    return ds.getRepository(ExpenseReport).find({ order: { createdAt: 'ASC' } });
  }

  @Get(':id')
  async one(@CurrentUser() user: AuthUser, @Param('id', ParseUUIDPipe) id: string): Promise<ExpenseReport> {
    const ds = await this.db.of(user);
    const report = await ds.getRepository(ExpenseReport).findOneBy({ id });
    if (!report) throw new ApiException(404, 'NOT_FOUND', 'no such report (or it is not shared with you)');
    return report;
  }

  /** File a new report; PostgreSQL records the signed-in user as its employee. */
  @Post()
  async create(@CurrentUser() user: AuthUser, @Body() body: CreateReportDto): Promise<ExpenseReport> {
    const ds = await this.db.of(user);
    const repo = ds.getRepository(ExpenseReport);
    const { identifiers } = await repo.insert({ title: body.title, amountCents: body.amountCents });
    return repo.findOneByOrFail({ id: identifiers[0]['id'] as string });
  }

  /**
   * Correct a report: its employee, or a manager it is shared with at `write`. The UPDATE policy
   * decides; an auditor's (read) update touches no row and is answered 403.
   */
  @Patch(':id')
  async update(@CurrentUser() user: AuthUser, @Param('id', ParseUUIDPipe) id: string, @Body() body: UpdateReportDto): Promise<ExpenseReport> {
    if (body.title === undefined && body.amountCents === undefined) throw new ApiException(400, 'INVALID_INPUT', 'nothing to change: give title or amountCents');
    const ds = await this.db.of(user);
    const repo = ds.getRepository(ExpenseReport);
    const changes = { ...(body.title !== undefined ? { title: body.title } : {}), ...(body.amountCents !== undefined ? { amountCents: body.amountCents } : {}) };
    const { affected } = await repo.update({ id }, changes);
    if (!affected) {
      const visible = await repo.findOneBy({ id });
      throw visible
        ? new ApiException(403, 'FORBIDDEN', 'you may read this report but not change it', 'Ask its employee to share it with you for writing.')
        : new ApiException(404, 'NOT_FOUND', 'no such report (or it is not shared with you)');
    }
    return repo.findOneByOrFail({ id });
  }

  /** Share a report with an approver, at a level. Only the report's employee may: the policies refuse anyone else. */
  @Post(':id/approvers')
  @HttpCode(204)
  async share(@CurrentUser() user: AuthUser, @Param('id', ParseUUIDPipe) id: string, @Body() body: ShareReportDto): Promise<void> {
    const ds = await this.db.of(user);
    await ds.getRepository(ReportApprover).insert({ reportId: id, approver: body.approver, level: body.level ?? 'read' });
  }
}
