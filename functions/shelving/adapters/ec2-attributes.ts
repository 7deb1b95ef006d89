import {
  type EC2Client,
  ModifyInstanceAttributeCommand,
  type ModifyInstanceAttributeCommandInput,
} from '@aws-sdk/client-ec2';
import { callAws } from '../../shared/aws-errors';
import { attributeChange, CHANGED_INSTANCE_ATTRIBUTES } from '../../shared/instance-attributes';
import type { ShelvingEc2 } from './ec2';

/**
 * The ModifyInstanceAttribute calls: what a replacement gets back of the shelved instance. Each
 * changes one of shelving's attributes only (CHANGED_INSTANCE_ATTRIBUTES, checked before the
 * call), the ones IAM grants the role (infra/capabilities/shelving.ts).
 */
export const attributeChanges = (
  client: EC2Client,
): Pick<ShelvingEc2, 'setDeleteOnTermination' | 'setUserData' | 'setProtection'> => {
  const modify = async (input: ModifyInstanceAttributeCommandInput): Promise<void> => {
    const checked = attributeChange(input, CHANGED_INSTANCE_ATTRIBUTES.shelving);
    await callAws('ModifyInstanceAttribute', () => client.send(new ModifyInstanceAttributeCommand(checked)));
  };
  return {
    async setDeleteOnTermination(instanceId, devices) {
      if (devices.length === 0) return;
      // One call for every device: the API changes one attribute per call, and the block device
      // mapping is one attribute whose value is a list (API_ModifyInstanceAttribute,
      // BlockDeviceMappings: "Array of InstanceBlockDeviceMappingSpecification objects").
      await modify({
        InstanceId: instanceId,
        BlockDeviceMappings: devices.map((device) => ({
          DeviceName: device.deviceName,
          Ebs: { DeleteOnTermination: device.deleteOnTermination },
        })),
      });
    },
    async setUserData(instanceId, userData) {
      // The raw bytes: the SDK encodes this blob on the wire.
      await modify({ InstanceId: instanceId, UserData: { Value: Buffer.from(userData, 'base64') } });
    },
    async setProtection(instanceId, attribute, value) {
      await modify({
        InstanceId: instanceId,
        ...(attribute === 'disableApiTermination'
          ? { DisableApiTermination: { Value: value } }
          : { DisableApiStop: { Value: value } }),
      });
    },
  };
};
