import { Module } from '@nestjs/common';
import { FilesController } from './files.controller';
import { FilesService } from './files.service';

/** The file browser API (needs ForwardableModule from @forwardable/nest in the app). */
@Module({ controllers: [FilesController], providers: [FilesService] })
export class FilesModule {}
