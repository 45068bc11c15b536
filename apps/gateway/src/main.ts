import { componentModule, runProcess } from '@cairn/nest-runtime';
import { Gateway } from './gateway';

void runProcess('gateway', (args) => componentModule('gateway', args, (deps) => new Gateway(deps)));
