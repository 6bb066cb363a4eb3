import { Column, CreateDateColumn, Entity, JoinColumn, ManyToOne, PrimaryColumn, PrimaryGeneratedColumn, UpdateDateColumn } from 'typeorm';

/** A folder. `owner` is set by PostgreSQL (`session_user`), never by the API. */
@Entity({ name: 'directories' })
export class Directory {
  @PrimaryGeneratedColumn('uuid') id!: string;
  @Column({ name: 'parent_id', type: 'uuid', nullable: true }) parentId!: string | null;
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
  @Column({ type: 'text' }) name!: string;
  @Column({ type: 'text', insert: false, update: false }) owner!: string;
  @Column({ type: 'text', default: '' }) content!: string;
  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' }) createdAt!: Date;
  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' }) updatedAt!: Date;
}

/** Read access to a folder for one database role. */
@Entity({ name: 'directory_permissions' })
export class DirectoryPermission {
  @PrimaryColumn({ name: 'directory_id', type: 'uuid' }) directoryId!: string;
  @PrimaryColumn({ type: 'text' }) grantee!: string;
  @CreateDateColumn({ name: 'granted_at', type: 'timestamptz' }) grantedAt!: Date;
  @ManyToOne(() => Directory, { onDelete: 'CASCADE' }) @JoinColumn({ name: 'directory_id' }) directory?: Directory;
}

/** Read access to a file for one database role. */
@Entity({ name: 'file_permissions' })
export class FilePermission {
  @PrimaryColumn({ name: 'file_id', type: 'uuid' }) fileId!: string;
  @PrimaryColumn({ type: 'text' }) grantee!: string;
  @CreateDateColumn({ name: 'granted_at', type: 'timestamptz' }) grantedAt!: Date;
  @ManyToOne(() => File, { onDelete: 'CASCADE' }) @JoinColumn({ name: 'file_id' }) file?: File;
}

/** Every entity of the schema, for `ForwardableModule.forRoot({ database: { entities } })`. */
export const schemaEntities = [Directory, File, DirectoryPermission, FilePermission];
