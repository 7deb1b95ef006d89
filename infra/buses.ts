import { CfnOutput, Stack } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import type { BusKind } from '../functions/catalog';
import { type BusPolicy, factsBusPolicy, requestBusPolicy } from './bus-policies';
import type { Operator } from './config';

export interface WarmbootBusesProps {
  /** Who may send which requests (`operators`). */
  readonly operators: readonly Operator[];
  /** The request bus: created under this name, or an existing one (`requestBus`). */
  readonly requestBus: { readonly name: string; readonly existing: boolean };
  /** The facts bus, created under this name (`factsBus.name`). */
  readonly factsBusName: string;
}

/**
 * warmboot's buses. The account's default bus carries the AWS service events (EC2, SSM, ECS) and
 * nothing else of warmboot's; operators send requests to the request bus, whose policy admits
 * only the configured principals and request types; warmboot publishes its facts to the facts
 * bus, which only its own roles may write to (`restrictFactsTo`, once the roles exist).
 * Policies: infra/bus-policies.ts.
 */
export class WarmbootBuses extends Construct {
  readonly defaultBus: events.IEventBus;
  readonly requestBus: events.IEventBus;
  readonly factsBus: events.IEventBus;
  /** The request bus's policy as deployed (the local cloud evaluates the same document). */
  readonly requestPolicy: BusPolicy;
  /** The facts bus's ARN, built from its name (what the roles' PutEvents statements name). */
  readonly factsBusArn: string;
  #factsPolicyAttached = false;

  constructor(scope: Construct, id: string, props: WarmbootBusesProps) {
    super(scope, id);
    this.defaultBus = events.EventBus.fromEventBusName(this, 'DefaultBus', 'default');
    const { name, existing } = props.requestBus;
    const stack = Stack.of(this);
    // The ARN from the name: a bus's policy cannot refer to the bus's own `Arn` attribute.
    const busArn = (busName: string) =>
      stack.formatArn({ service: 'events', resource: 'event-bus', resourceName: busName });
    if (existing) {
      this.requestBus = events.EventBus.fromEventBusName(this, 'RequestBus', name);
      this.requestPolicy = requestBusPolicy({
        busArn: busArn(name),
        operators: props.operators,
        shared: true,
      });
      // A bus the deployment does not own may carry other publishers' statements: warmboot adds
      // its own, one `AWS::Events::EventBusPolicy` each, and leaves the others alone.
      for (const statement of this.requestPolicy.Statement) {
        new events.CfnEventBusPolicy(this, `RequestBusPolicy${statement.Sid}`, {
          eventBusName: name,
          statementId: `warmboot-${statement.Sid}`,
          statement,
        });
      }
    } else {
      const bus = new events.EventBus(this, 'RequestBus', {
        eventBusName: name,
        description: 'warmboot operator requests: only the principals in `operators` may put events',
      });
      this.requestBus = bus;
      this.requestPolicy = requestBusPolicy({
        busArn: busArn(name),
        operators: props.operators,
        shared: false,
      });
      // The policy is part of the bus itself, so the bus never exists without it.
      (bus.node.defaultChild as events.CfnEventBus).policy = this.requestPolicy;
    }
    this.factsBus = new events.EventBus(this, 'FactsBus', {
      eventBusName: props.factsBusName,
      description: 'warmboot facts (source warmboot.fact): only warmboot roles may put events',
    });
    this.factsBusArn = busArn(props.factsBusName);
    new CfnOutput(stack, 'RequestBusName', {
      value: this.requestBus.eventBusName,
      description: 'Send warmboot requests here: aws events put-events --entries with EventBusName',
    });
    new CfnOutput(stack, 'FactsBusName', {
      value: this.factsBus.eventBusName,
      description: 'warmboot publishes its facts here (source warmboot.fact)',
    });
  }

  /** The bus a rule of this kind sits on. */
  bus(kind: BusKind): events.IEventBus {
    switch (kind) {
      case 'default':
        return this.defaultBus;
      case 'requests':
        return this.requestBus;
      case 'facts':
        return this.factsBus;
    }
  }

  /** Makes the facts bus writable only by these roles (call once, with every function role). */
  restrictFactsTo(roles: readonly iam.IRole[]): void {
    if (this.#factsPolicyAttached) throw new Error('the facts bus policy is already attached');
    this.#factsPolicyAttached = true;
    (this.factsBus.node.defaultChild as events.CfnEventBus).policy = factsBusPolicy({
      busArn: this.factsBusArn,
      writerRoleArns: roles.map((role) => role.roleArn),
    });
  }
}
