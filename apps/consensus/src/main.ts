import { runProcess } from '@cairn/nest-runtime';
import { ConsensusModule } from './consensus.module';

void runProcess('consensus', (args) => ConsensusModule.forRoot(args));
