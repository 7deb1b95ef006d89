#!/usr/bin/env node
import { createWarmbootApp } from './stack';

createWarmbootApp();
