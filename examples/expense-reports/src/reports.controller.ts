import { Body, Controller, Get, HttpCode, Param, ParseUUIDPipe, Post } from '@nestjs/common';
import { IsInt, IsString, Length, Matches, Max, Min } from 'class-validator';
import { ApiException, AuthUser, CurrentUser, UserDb } from '@forwardable/nest';
import { ExpenseReport, ReportApprover } from './entities';

/** `POST /api/reports` body. */
export class CreateReportDto {
  @IsString() @Length(1, 200) title!: string;
  @IsInt() @Min(0) @Max(100_000_000) amountCents!: number;
}

/** `POST /api/reports/:id/approvers` body: the approver's user name (their database role). */
export class ShareReportDto {
  @IsString() @Matches(/^[a-z0-9._-]{1,63}$/) approver!: string;
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

  /** Share a report with an approver. Only the report's employee may: the policies refuse anyone else. */
  @Post(':id/approvers')
  @HttpCode(204)
  async share(@CurrentUser() user: AuthUser, @Param('id', ParseUUIDPipe) id: string, @Body() body: ShareReportDto): Promise<void> {
    const ds = await this.db.of(user);
    await ds.getRepository(ReportApprover).insert({ reportId: id, approver: body.approver });
  }
}
