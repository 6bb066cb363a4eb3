import { Inject, Injectable } from '@nestjs/common';
import { AUTH_OPTIONS, AuthOptions } from './options';

/**
 * A user's groups, exposed as roles. From the configured admin list; a directory lookup can
 * be added behind the same method.
 */
@Injectable()
export class GroupsService {
  readonly adminGroup: string;
  private readonly admins: Set<string>;

  constructor(@Inject(AUTH_OPTIONS) options: AuthOptions) {
    this.adminGroup = options.adminGroup ?? 'forwardable-admins';
    this.admins = new Set((options.admins ?? []).map((a) => a.toLowerCase()));
  }

  async groupsOf(user: string): Promise<string[]> {
    return this.admins.has(user.toLowerCase()) ? [this.adminGroup] : [];
  }
}
