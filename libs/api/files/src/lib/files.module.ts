import { Module } from '@nestjs/common';
import { FilesController } from './files.controller';
import { FilesService } from './files.service';
import { SqlService } from './sql.service';

/** The file browser API and "Run SQL as yourself" (needs ForwardableModule from @forwardable/nest in the app). */
@Module({ controllers: [FilesController], providers: [FilesService, SqlService] })
export class FilesModule {}
