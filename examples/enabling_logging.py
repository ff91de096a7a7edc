from tractor.log import get_console_log

log = get_console_log('trace')
log.trace('tracing is on')
log.info('and so is everything above it')
