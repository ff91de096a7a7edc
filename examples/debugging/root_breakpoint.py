"""A breakpoint in the root actor itself."""
import tractor


async def main():
    here = 'root'
    await tractor.breakpoint()
    print('root went on from', here)


if __name__ == '__main__':
    tractor.run(main, debug_mode=True)
