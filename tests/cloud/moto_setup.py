"""Fill a moto_server (AWS emulator) with the EC2 inventory of RustMap's cloud tests.

Usage: moto_setup.py ENDPOINT inventory   the instances below, in two regions
       moto_setup.py ENDPOINT denied      an IAM user with no permission; prints its key pair

Every address is inside the lab's 198.18.0.0/15, and the subnets do not map public addresses,
so nothing the emulator hands out can lead a scan outside the lab (crates/cli/tests/lab_cloud.rs).

  us-east-1, subnet 198.18.0.0/24:
    198.18.0.10  h10   running  env=lab team=sec
    198.18.0.11  h11   running  env=lab
    198.18.0.13  h13   stopped  env=lab
    198.18.0.14  h14   running  env=prod
  us-east-1, subnet 198.18.3.0/24: 6 instances, running, env=bulk (paging)
  us-west-2, subnet 198.18.2.0/24:
    198.18.2.10  h20   running  env=lab
"""
import json
import sys

import boto3


def ec2(endpoint, region):
    return boto3.client("ec2", region_name=region, endpoint_url=endpoint,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def subnet(client, vpc_cidr, cidr, zone):
    vpc = client.create_vpc(CidrBlock=vpc_cidr)["Vpc"]["VpcId"]
    return client.create_subnet(VpcId=vpc, CidrBlock=cidr, AvailabilityZone=zone)["Subnet"]["SubnetId"]


def run(client, image, sub, tags, ip=None, count=1):
    args = dict(ImageId=image, MinCount=count, MaxCount=count, InstanceType="t3.micro", SubnetId=sub,
                TagSpecifications=[{"ResourceType": "instance",
                                    "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}])
    if ip:
        args["PrivateIpAddress"] = ip
    return [i["InstanceId"] for i in client.run_instances(**args)["Instances"]]


def inventory(endpoint):
    east = ec2(endpoint, "us-east-1")
    image = east.describe_images()["Images"][0]["ImageId"]
    lan = subnet(east, "198.18.0.0/16", "198.18.0.0/24", "us-east-1a")
    run(east, image, lan, {"Name": "h10", "env": "lab", "team": "sec"}, "198.18.0.10")
    run(east, image, lan, {"Name": "h11", "env": "lab"}, "198.18.0.11")
    stopped = run(east, image, lan, {"Name": "h13", "env": "lab"}, "198.18.0.13")
    east.stop_instances(InstanceIds=stopped)
    run(east, image, lan, {"Name": "h14", "env": "prod"}, "198.18.0.14")
    bulk = east.create_subnet(VpcId=east.describe_subnets(SubnetIds=[lan])["Subnets"][0]["VpcId"],
                              CidrBlock="198.18.3.0/24", AvailabilityZone="us-east-1b")["Subnet"]["SubnetId"]
    run(east, image, bulk, {"env": "bulk"}, count=6)
    west = ec2(endpoint, "us-west-2")
    image = west.describe_images()["Images"][0]["ImageId"]
    remote = subnet(west, "198.18.0.0/16", "198.18.2.0/24", "us-west-2a")
    run(west, image, remote, {"Name": "h20", "env": "lab"}, "198.18.2.10")
    for client in (east, west):
        for r in client.describe_instances()["Reservations"]:
            for i in r["Instances"]:
                assert "PublicIpAddress" not in i, f"moto handed out a public address: {i}"


def denied(endpoint):
    iam = boto3.client("iam", region_name="us-east-1", endpoint_url=endpoint,
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    iam.create_user(UserName="nobody")
    key = iam.create_access_key(UserName="nobody")["AccessKey"]
    print(json.dumps({"id": key["AccessKeyId"], "secret": key["SecretAccessKey"]}))


if __name__ == "__main__":
    {"inventory": inventory, "denied": denied}[sys.argv[2]](sys.argv[1])
