import { Column, CreateDateColumn, Entity, JoinColumn, ManyToOne, PrimaryColumn, PrimaryGeneratedColumn } from 'typeorm';

/**
 * An expense report. `employee` is filled in by PostgreSQL (`DEFAULT session_user`): the app
 * connects as the signed-in user, so it never has to (and cannot) claim someone else's report.
 */
@Entity({ name: 'expense_reports' })
export class ExpenseReport {
  @PrimaryGeneratedColumn('uuid') id!: string;
  @Column({ type: 'text', insert: false, update: false }) employee!: string;
  @Column({ type: 'text' }) title!: string;
  @Column({ name: 'amount_cents', type: 'integer' }) amountCents!: number;
  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' }) createdAt!: Date;
}

/**
 * An approver (a database role) with access to one report: the report is "shared" with them.
 * `read` for an auditor; `write` for a manager, who may also correct title and amount.
 */
@Entity({ name: 'report_approvers' })
export class ReportApprover {
  @PrimaryColumn({ name: 'report_id', type: 'uuid' }) reportId!: string;
  @PrimaryColumn({ type: 'text' }) approver!: string;
  @Column({ type: 'text', default: 'read' }) level!: 'read' | 'write';
  @ManyToOne(() => ExpenseReport, { onDelete: 'CASCADE' }) @JoinColumn({ name: 'report_id' }) report?: ExpenseReport;
}

/** Every entity of the example, for `ForwardableModule.forRoot({ database: { entities } })`. */
export const entities = [ExpenseReport, ReportApprover];
