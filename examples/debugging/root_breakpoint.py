"""A breakpoint in the root actor itself (``tractor.pause()`` is
``tractor.breakpoint()`` under another name)."""
import tractor


async def main():
    here = 'root'
    await tractor.pause()
    print('root went on from', here)


if __name__ == '__main__':
    tractor.run(main, debug_mode=True)
