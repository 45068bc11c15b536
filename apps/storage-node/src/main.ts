import { runProcess } from '@cairn/nest-runtime';
import { StorageNodeModule } from './storage-node.module';

void runProcess('storage', (args) => StorageNodeModule.forRoot(args));
