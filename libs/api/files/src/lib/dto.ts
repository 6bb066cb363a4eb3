import { Transform } from 'class-transformer';
import { IsIn, IsInt, IsOptional, IsString, IsUUID, Length, Matches, Max, MaxLength, Min, ValidateIf } from 'class-validator';
import type { AccessLevel } from '@forwardable/shared/contracts';

/** A name for a file or folder: no slash, no NUL, 1-255 characters. */
const NAME = /^[^/\0]+$/;
/**
 * A database role name as Forwardable creates them (the principal without the realm), or a group.
 * Upper case too: a role may be mixed-case (FORWARDABLE_USERNAME_CASE=exact, `Dana`), and in
 * `lower` mode a typed `Dana` names the role `dana` (the service maps it).
 */
const ROLE = /^[A-Za-z_][A-Za-z0-9_.-]{0,62}$/;

export class CreateDirectoryDto {
  @IsString() @Length(1, 255) @Matches(NAME, { message: 'name must not contain / or NUL' }) name!: string;
  @IsOptional() @ValidateIf((_o, v) => v !== null) @IsUUID() parentId?: string | null;
}

export class CreateFileDto {
  @IsString() @Length(1, 255) @Matches(NAME, { message: 'name must not contain / or NUL' }) name!: string;
  @IsOptional() @ValidateIf((_o, v) => v !== null) @IsUUID() directoryId?: string | null;
  @IsOptional() @IsString() @MaxLength(1_000_000) content?: string;
}

export class UpdateFileDto {
  @IsOptional() @IsString() @Length(1, 255) @Matches(NAME, { message: 'name must not contain / or NUL' }) name?: string;
  @IsOptional() @IsString() @MaxLength(1_000_000) content?: string;
  /** `null` moves the file to the top level; absent leaves it where it is. */
  @IsOptional() @IsUUID() directoryId?: string | null;
}

export class UpdateDirectoryDto {
  @IsOptional() @IsString() @Length(1, 255) @Matches(NAME, { message: 'name must not contain / or NUL' }) name?: string;
  /** `null` moves the folder to the top level; absent leaves it where it is. */
  @IsOptional() @IsUUID() parentId?: string | null;
}

export class GrantDto {
  @IsString() @Matches(ROLE, { message: 'grantee must be a user or group name (letters, digits, _ . -)' }) grantee!: string;
  @IsOptional() @IsIn(['read', 'write'], { message: 'level must be read or write' }) level?: AccessLevel;
}

export class ListingQuery {
  @IsOptional() @Transform(({ value }) => (value === '' ? undefined : value)) @IsUUID() directoryId?: string;
  @IsOptional() @Transform(({ value }) => Number(value)) @IsInt() @Min(1) @Max(100_000) page = 1;
  @IsOptional() @Transform(({ value }) => Number(value)) @IsInt() @Min(1) @Max(500) pageSize = 50;
}

export class SqlDto {
  // NUL cannot travel in the protocol's C strings: PostgreSQL would drop the connection (a 503)
  @IsString() @Length(1, 20_000) @Matches(/^[^\0]*$/, { message: 'sql must not contain NUL characters' }) sql!: string;
}

export class SearchQuery {
  @IsString() @Length(1, 200) q!: string;
}
