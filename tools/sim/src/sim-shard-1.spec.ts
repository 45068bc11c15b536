import { simSuite } from './sim-suite';

// One of two shards of the seed range, so that jest runs them on two workers (jest.config.js maxWorkers).
simSuite(0, 2);
