import tractor


async def main(service_name):

    async with tractor.get_arbiter() as portal:
        print(f"Arbiter is listening on {portal.channel}")

    async with tractor.find_actor(service_name) as sockaddr:
        # (the README printed an undefined name, ``my_service``, here)
        print(f"my_service is found at {sockaddr}")


tractor.run(main, 'some_actor_name')
