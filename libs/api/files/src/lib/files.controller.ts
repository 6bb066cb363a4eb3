import { Body, Controller, Delete, Get, HttpCode, Param, ParseUUIDPipe, Patch, Post, Query } from '@nestjs/common';
import { AuthUser, CurrentUser } from '@forwardable/nest';
import type { SqlResponse, DirectoryDto, FileDto, ListingResponse, PermissionDto, SearchResponse, TreeResponse } from '@forwardable/shared/contracts';
import { CreateDirectoryDto, CreateFileDto, GrantDto, ListingQuery, SearchQuery, SqlDto, UpdateDirectoryDto, UpdateFileDto } from './dto';
import { FilesService } from './files.service';
import { SqlService } from './sql.service';

const uuid = new ParseUUIDPipe({ version: undefined });

/** Files and their sharing: `/api/files`, `/api/directories`, `/api/search`, and `/api/sql` (run SQL as yourself). */
@Controller()
export class FilesController {
  constructor(
    private readonly files: FilesService,
    private readonly sqlService: SqlService,
  ) {}

  @Get('files/tree')
  tree(@CurrentUser() u: AuthUser): Promise<TreeResponse> {
    return this.files.tree(u);
  }

  @Get('files')
  list(@CurrentUser() u: AuthUser, @Query() q: ListingQuery): Promise<ListingResponse> {
    return this.files.listing(u, q.directoryId, q.page, q.pageSize);
  }

  @Get('files/:id')
  get(@CurrentUser() u: AuthUser, @Param('id', uuid) id: string): Promise<FileDto> {
    return this.files.file(u, id);
  }

  @Post('files')
  create(@CurrentUser() u: AuthUser, @Body() b: CreateFileDto): Promise<FileDto> {
    return this.files.createFile(u, b.name, b.directoryId, b.content);
  }

  @Patch('files/:id')
  update(@CurrentUser() u: AuthUser, @Param('id', uuid) id: string, @Body() b: UpdateFileDto): Promise<FileDto> {
    return this.files.updateFile(u, id, b);
  }

  @Delete('files/:id')
  @HttpCode(204)
  remove(@CurrentUser() u: AuthUser, @Param('id', uuid) id: string): Promise<void> {
    return this.files.deleteFile(u, id);
  }

  @Get('files/:id/permissions')
  filePermissions(@CurrentUser() u: AuthUser, @Param('id', uuid) id: string): Promise<PermissionDto[]> {
    return this.files.permissions(u, 'file', id);
  }

  @Post('files/:id/permissions')
  grantFile(@CurrentUser() u: AuthUser, @Param('id', uuid) id: string, @Body() b: GrantDto): Promise<PermissionDto> {
    return this.files.grant(u, 'file', id, b.grantee, b.level);
  }

  @Delete('files/:id/permissions/:grantee')
  @HttpCode(204)
  revokeFile(@CurrentUser() u: AuthUser, @Param('id', uuid) id: string, @Param('grantee') grantee: string): Promise<void> {
    return this.files.revoke(u, 'file', id, grantee);
  }

  @Post('directories')
  createDirectory(@CurrentUser() u: AuthUser, @Body() b: CreateDirectoryDto): Promise<DirectoryDto> {
    return this.files.createDirectory(u, b.name, b.parentId);
  }

  @Patch('directories/:id')
  updateDirectory(@CurrentUser() u: AuthUser, @Param('id', uuid) id: string, @Body() b: UpdateDirectoryDto): Promise<DirectoryDto> {
    return this.files.updateDirectory(u, id, b);
  }

  @Delete('directories/:id')
  @HttpCode(204)
  removeDirectory(@CurrentUser() u: AuthUser, @Param('id', uuid) id: string): Promise<void> {
    return this.files.deleteDirectory(u, id);
  }

  @Get('directories/:id/permissions')
  directoryPermissions(@CurrentUser() u: AuthUser, @Param('id', uuid) id: string): Promise<PermissionDto[]> {
    return this.files.permissions(u, 'directory', id);
  }

  @Post('directories/:id/permissions')
  grantDirectory(@CurrentUser() u: AuthUser, @Param('id', uuid) id: string, @Body() b: GrantDto): Promise<PermissionDto> {
    return this.files.grant(u, 'directory', id, b.grantee, b.level);
  }

  @Delete('directories/:id/permissions/:grantee')
  @HttpCode(204)
  revokeDirectory(@CurrentUser() u: AuthUser, @Param('id', uuid) id: string, @Param('grantee') grantee: string): Promise<void> {
    return this.files.revoke(u, 'directory', id, grantee);
  }

  /** The containment demo: the user's own query on the user's own connection (see {@link SqlService}). */
  @Post('sql')
  @HttpCode(200)
  sql(@CurrentUser() u: AuthUser, @Body() b: SqlDto): Promise<SqlResponse> {
    return this.sqlService.run(u, b.sql);
  }

  @Get('search')
  search(@CurrentUser() u: AuthUser, @Query() q: SearchQuery): Promise<SearchResponse> {
    return this.files.search(u, q.q);
  }
}
