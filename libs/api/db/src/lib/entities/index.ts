import { Column, CreateDateColumn, Entity, JoinColumn, ManyToOne, PrimaryColumn, PrimaryGeneratedColumn, UpdateDateColumn } from 'typeorm';

/** A folder. `owner` is set by PostgreSQL (`session_user`), never by the API. */
@Entity({ name: 'directories' })
export class Directory {
  @PrimaryGeneratedColumn('uuid') id!: string;
  @Column({ name: 'parent_id', type: 'uuid', nullable: true }) parentId!: string | null;
  /** The folder this one is in: the RLS mapping's container (a grant on a folder reaches below it). */
  @ManyToOne(() => Directory, { onDelete: 'CASCADE', nullable: true }) @JoinColumn({ name: 'parent_id' }) parent?: Directory | null;
  @Column({ type: 'text' }) name!: string;
  @Column({ type: 'text', insert: false, update: false }) owner!: string;
  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' }) createdAt!: Date;
  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' }) updatedAt!: Date;
}

/** A text file in a folder (or at the top level). */
@Entity({ name: 'files' })
export class File {
  @PrimaryGeneratedColumn('uuid') id!: string;
  @Column({ name: 'directory_id', type: 'uuid', nullable: true }) directoryId!: string | null;
  /** The folder the file is in: the RLS mapping's container. */
  @ManyToOne(() => Directory, { onDelete: 'CASCADE', nullable: true }) @JoinColumn({ name: 'directory_id' }) directory?: Directory | null;
  @Column({ type: 'text' }) name!: string;
  @Column({ type: 'text', insert: false, update: false }) owner!: string;
  @Column({ type: 'text', default: '' }) content!: string;
  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' }) createdAt!: Date;
  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' }) updatedAt!: Date;
}

/** Access to a folder and everything in it for one database role (`read` or `write`). */
@Entity({ name: 'directory_permissions' })
export class DirectoryPermission {
  @PrimaryColumn({ name: 'directory_id', type: 'uuid' }) directoryId!: string;
  @PrimaryColumn({ type: 'text' }) grantee!: string;
  @Column({ type: 'text', default: 'read' }) level!: 'read' | 'write';
  @CreateDateColumn({ name: 'granted_at', type: 'timestamptz' }) grantedAt!: Date;
  @ManyToOne(() => Directory, { onDelete: 'CASCADE' }) @JoinColumn({ name: 'directory_id' }) directory?: Directory;
}

/** Access to a file for one database role (`read` or `write`). */
@Entity({ name: 'file_permissions' })
export class FilePermission {
  @PrimaryColumn({ name: 'file_id', type: 'uuid' }) fileId!: string;
  @PrimaryColumn({ type: 'text' }) grantee!: string;
  @Column({ type: 'text', default: 'read' }) level!: 'read' | 'write';
  @CreateDateColumn({ name: 'granted_at', type: 'timestamptz' }) grantedAt!: Date;
  @ManyToOne(() => File, { onDelete: 'CASCADE' }) @JoinColumn({ name: 'file_id' }) file?: File;
}

/** Every entity of the schema, for `ForwardableModule.forRoot({ database: { entities } })`. */
export const schemaEntities = [Directory, File, DirectoryPermission, FilePermission];
