import { runProcess } from '@cairn/nest-runtime';
import { GatewayModule } from './gateway.module';

void runProcess('gateway', (args) => GatewayModule.forRoot(args));
