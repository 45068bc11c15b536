console.log('gateway');
